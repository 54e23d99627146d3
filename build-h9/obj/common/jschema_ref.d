build-h9/obj/common/jschema_ref.o: common/jschema_ref.c \
 common/jschema_int.h common/buf.h common/err.h common/jschema.h
common/jschema_int.h:
common/buf.h:
common/err.h:
common/jschema.h:
