build-h9/obj/services/event-store/es_event.o: \
 services/event-store/es_event.c services/event-store/es_event.h \
 common/buf.h common/err.h common/err.h common/jsonx.h common/jsonw.h \
 common/buf.h common/timefmt.h common/validate.h
services/event-store/es_event.h:
common/buf.h:
common/err.h:
common/err.h:
common/jsonx.h:
common/jsonw.h:
common/buf.h:
common/timefmt.h:
common/validate.h:
