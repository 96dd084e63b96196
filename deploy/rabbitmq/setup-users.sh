#!/bin/sh
# One broker user per service, each with the least it needs (RabbitMQ's configure/write/read
# patterns on the default vhost), passwords from the environment (.env, never this file).
# Run once by docker-compose.yml's `broker-users` service; safe to run again (it updates).
# tests/integration/test_broker_users.py applies the same `user` lines to a test vhost and runs
# the engine and a producer under them.
set -eu

admin() {
  rabbitmqadmin --host rabbitmq --username "$RABBITMQ_ADMIN_USER" \
    --password "$RABBITMQ_ADMIN_PASSWORD" "$@"
}

user() {
  admin declare user name="$1" password="$2" tags=
  admin declare permission vhost=/ user="$1" configure="$3" write="$4" read="$5"
}

# The engine: declares and reads its exchange and intake queue, its Dramatiq nudge queues, and
# publishes notifications and ticks.
user recourse-engine "$ENGINE_BROKER_PASSWORD" '^(refunds\.events|refunds\.intake|refunds\.notifications|recourse\.apply(\.DQ|\.XQ)?)$' '^(refunds\.events|refunds\.intake|refunds\.notifications|recourse\.apply(\.DQ|\.XQ)?|amq\.default)$' '^(refunds\.events|refunds\.intake|recourse\.apply(\.DQ|\.XQ)?)$'
# Producers: publish to refunds.events and nothing else (deploy/producers.toml says which types).
user contracts-service "$CONTRACTS_BROKER_PASSWORD" '^$' '^refunds\.events$' '^$'
user payments-service "$PAYMENTS_BROKER_PASSWORD" '^$' '^refunds\.events$' '^$'
user dispute-tools "$DISPUTE_TOOLS_BROKER_PASSWORD" '^$' '^refunds\.events$' '^$'
