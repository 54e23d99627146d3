build-h9/obj/common/db_pg.o: common/db_pg.c common/db_backend.h \
 common/db.h common/err.h /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h common/buf.h
common/db_backend.h:
common/db.h:
common/err.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
common/buf.h:
