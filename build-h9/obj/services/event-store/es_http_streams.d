build-h9/obj/services/event-store/es_http_streams.o: \
 services/event-store/es_http_streams.c services/event-store/es_app.h \
 common/db.h common/err.h services/event-store/es_append.h common/err.h \
 services/event-store/es_event.h common/buf.h common/watch.h \
 common/http_server.h common/metrics.h common/metrics.h \
 services/event-store/es_store.h common/validate.h
services/event-store/es_app.h:
common/db.h:
common/err.h:
services/event-store/es_append.h:
common/err.h:
services/event-store/es_event.h:
common/buf.h:
common/watch.h:
common/http_server.h:
common/metrics.h:
common/metrics.h:
services/event-store/es_store.h:
common/validate.h:
