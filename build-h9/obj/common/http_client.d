build-h9/obj/common/http_client.o: common/http_client.c \
 common/http_client.h common/buf.h common/err.h
common/http_client.h:
common/buf.h:
common/err.h:
