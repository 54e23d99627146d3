build-h8/obj/services/consumer-store/main.o: \
 services/consumer-store/main.c services/consumer-store/cs_app.h \
 common/db.h common/err.h common/http_server.h common/metrics.h \
 common/metrics.h services/consumer-store/cs_store.h common/err.h \
 common/log.h common/service.h common/config.h
services/consumer-store/cs_app.h:
common/db.h:
common/err.h:
common/http_server.h:
common/metrics.h:
common/metrics.h:
services/consumer-store/cs_store.h:
common/err.h:
common/log.h:
common/service.h:
common/config.h:
