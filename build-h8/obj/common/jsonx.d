build-h8/obj/common/jsonx.o: common/jsonx.c common/jsonx.h common/err.h
common/jsonx.h:
common/err.h:
