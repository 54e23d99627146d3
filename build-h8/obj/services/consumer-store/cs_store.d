build-h8/obj/services/consumer-store/cs_store.o: \
 services/consumer-store/cs_store.c services/consumer-store/cs_store.h \
 common/db.h common/err.h common/err.h common/log.h common/timefmt.h
services/consumer-store/cs_store.h:
common/db.h:
common/err.h:
common/err.h:
common/log.h:
common/timefmt.h:
