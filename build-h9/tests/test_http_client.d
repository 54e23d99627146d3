build-h9/tests/test_http_client: tests/unit/test_http_client.c \
 common/http_client.h common/buf.h common/err.h common/http_server.h \
 common/metrics.h common/timefmt.h
common/http_client.h:
common/buf.h:
common/err.h:
common/http_server.h:
common/metrics.h:
common/timefmt.h:
