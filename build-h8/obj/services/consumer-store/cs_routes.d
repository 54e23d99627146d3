build-h8/obj/services/consumer-store/cs_routes.o: \
 services/consumer-store/cs_routes.c services/consumer-store/cs_app.h \
 common/db.h common/err.h common/http_server.h common/metrics.h \
 common/metrics.h common/validate.h
services/consumer-store/cs_app.h:
common/db.h:
common/err.h:
common/http_server.h:
common/metrics.h:
common/metrics.h:
common/validate.h:
