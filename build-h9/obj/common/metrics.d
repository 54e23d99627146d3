build-h9/obj/common/metrics.o: common/metrics.c common/metrics.h \
 common/buf.h common/err.h
common/metrics.h:
common/buf.h:
common/err.h:
