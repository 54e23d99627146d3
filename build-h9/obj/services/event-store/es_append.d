build-h9/obj/services/event-store/es_append.o: \
 services/event-store/es_append.c services/event-store/es_append.h \
 common/db.h common/err.h common/err.h services/event-store/es_event.h \
 common/buf.h common/watch.h services/event-store/es_store.h \
 common/validate.h common/jsonx.h common/log.h common/timefmt.h
services/event-store/es_append.h:
common/db.h:
common/err.h:
common/err.h:
services/event-store/es_event.h:
common/buf.h:
common/watch.h:
services/event-store/es_store.h:
common/validate.h:
common/jsonx.h:
common/log.h:
common/timefmt.h:
