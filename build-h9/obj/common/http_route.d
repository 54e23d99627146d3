build-h9/obj/common/http_route.o: common/http_route.c common/http_route.h \
 common/http_server.h common/err.h common/metrics.h
common/http_route.h:
common/http_server.h:
common/err.h:
common/metrics.h:
