build-h9/obj/services/event-store/es_store.o: \
 services/event-store/es_store.c services/event-store/es_store.h \
 common/buf.h common/err.h common/db.h common/err.h common/validate.h \
 services/event-store/es_event.h common/jsonx.h common/log.h
services/event-store/es_store.h:
common/buf.h:
common/err.h:
common/db.h:
common/err.h:
common/validate.h:
services/event-store/es_event.h:
common/jsonx.h:
common/log.h:
