build-h9/obj/services/event-store/es_listen.o: \
 services/event-store/es_listen.c services/event-store/es_listen.h \
 common/watch.h common/db.h common/err.h services/event-store/es_store.h \
 common/buf.h common/err.h common/validate.h common/log.h \
 common/timefmt.h
services/event-store/es_listen.h:
common/watch.h:
common/db.h:
common/err.h:
services/event-store/es_store.h:
common/buf.h:
common/err.h:
common/validate.h:
common/log.h:
common/timefmt.h:
