build-h8/obj/common/validate.o: common/validate.c common/validate.h
common/validate.h:
