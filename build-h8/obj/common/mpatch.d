build-h8/obj/common/mpatch.o: common/mpatch.c common/mpatch.h \
 common/err.h
common/mpatch.h:
common/err.h:
