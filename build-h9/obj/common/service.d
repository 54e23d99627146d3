build-h9/obj/common/service.o: common/service.c common/service.h \
 common/config.h common/log.h
common/service.h:
common/config.h:
common/log.h:
