//! twinwire-adapter-mqtt: connects connection sources and targets to MQTT brokers; knows bytes, headers and
//! addresses of its transport, nothing of twins. Filled by the MQTT adapter issue.
