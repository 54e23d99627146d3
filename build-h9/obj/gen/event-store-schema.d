build-h9/obj/gen/event-store-schema.o: build-h9/gen/event-store-schema.c \
 common/db.h common/err.h
common/db.h:
common/err.h:
