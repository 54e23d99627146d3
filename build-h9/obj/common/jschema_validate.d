build-h9/obj/common/jschema_validate.o: common/jschema_validate.c \
 common/jschema_int.h common/buf.h common/err.h common/jschema.h
common/jschema_int.h:
common/buf.h:
common/err.h:
common/jschema.h:
