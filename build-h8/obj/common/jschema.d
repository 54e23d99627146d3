build-h8/obj/common/jschema.o: common/jschema.c common/jschema_int.h \
 common/buf.h common/err.h common/jschema.h
common/jschema_int.h:
common/buf.h:
common/err.h:
common/jschema.h:
