build-h9/obj/common/jsonw.o: common/jsonw.c common/jsonw.h common/buf.h \
 common/err.h
common/jsonw.h:
common/buf.h:
common/err.h:
