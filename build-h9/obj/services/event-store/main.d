build-h9/obj/services/event-store/main.o: services/event-store/main.c \
 common/db.h common/err.h services/event-store/es_app.h \
 services/event-store/es_append.h common/err.h \
 services/event-store/es_event.h common/buf.h common/watch.h \
 common/http_server.h common/metrics.h common/metrics.h \
 services/event-store/es_listen.h services/event-store/es_store.h \
 common/validate.h common/log.h common/service.h common/config.h
common/db.h:
common/err.h:
services/event-store/es_app.h:
services/event-store/es_append.h:
common/err.h:
services/event-store/es_event.h:
common/buf.h:
common/watch.h:
common/http_server.h:
common/metrics.h:
common/metrics.h:
services/event-store/es_listen.h:
services/event-store/es_store.h:
common/validate.h:
common/log.h:
common/service.h:
common/config.h:
