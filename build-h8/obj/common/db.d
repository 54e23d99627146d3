build-h8/obj/common/db.o: common/db.c common/db.h common/err.h \
 common/db_backend.h
common/db.h:
common/err.h:
common/db_backend.h:
