build-h8/obj/gen/consumer-store-schema.o: \
 build-h8/gen/consumer-store-schema.c common/db.h common/err.h
common/db.h:
common/err.h:
