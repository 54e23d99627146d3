build-h8/obj/common/db_sqlite.o: common/db_sqlite.c common/db_backend.h \
 common/db.h common/err.h
common/db_backend.h:
common/db.h:
common/err.h:
