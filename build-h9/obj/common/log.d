build-h9/obj/common/log.o: common/log.c common/log.h common/buf.h \
 common/err.h
common/log.h:
common/buf.h:
common/err.h:
