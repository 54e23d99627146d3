build-h9/obj/common/watch.o: common/watch.c common/watch.h \
 common/timefmt.h
common/watch.h:
common/timefmt.h:
