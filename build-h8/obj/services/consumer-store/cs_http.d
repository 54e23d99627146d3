build-h8/obj/services/consumer-store/cs_http.o: \
 services/consumer-store/cs_http.c services/consumer-store/cs_app.h \
 common/db.h common/err.h common/http_server.h common/metrics.h \
 common/metrics.h services/consumer-store/cs_store.h common/err.h \
 common/jsonx.h common/timefmt.h
services/consumer-store/cs_app.h:
common/db.h:
common/err.h:
common/http_server.h:
common/metrics.h:
common/metrics.h:
services/consumer-store/cs_store.h:
common/err.h:
common/jsonx.h:
common/timefmt.h:
