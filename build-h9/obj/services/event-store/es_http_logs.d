build-h9/obj/services/event-store/es_http_logs.o: \
 services/event-store/es_http_logs.c common/buf.h common/err.h \
 services/event-store/es_app.h common/db.h \
 services/event-store/es_append.h common/err.h \
 services/event-store/es_event.h common/watch.h common/http_server.h \
 common/metrics.h common/metrics.h services/event-store/es_store.h \
 common/validate.h common/timefmt.h
common/buf.h:
common/err.h:
services/event-store/es_app.h:
common/db.h:
services/event-store/es_append.h:
common/err.h:
services/event-store/es_event.h:
common/watch.h:
common/http_server.h:
common/metrics.h:
common/metrics.h:
services/event-store/es_store.h:
common/validate.h:
common/timefmt.h:
