build-h9/obj/common/uuid4.o: common/uuid4.c common/uuid4.h
common/uuid4.h:
