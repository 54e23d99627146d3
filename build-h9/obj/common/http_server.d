build-h9/obj/common/http_server.o: common/http_server.c \
 common/http_server.h common/err.h common/metrics.h common/buf.h \
 common/http_route.h common/jsonx.h common/log.h common/timefmt.h
common/http_server.h:
common/err.h:
common/metrics.h:
common/buf.h:
common/http_route.h:
common/jsonx.h:
common/log.h:
common/timefmt.h:
