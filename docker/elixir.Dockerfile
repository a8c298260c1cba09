# Stand-in for hexpm/elixir:*-debian-bookworm (see base-images.sh): Debian 12's Elixir 1.14 on
# OTP 25, from Debian's archive, on top of the debootstrapped runner base.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# erlang-dev: the headers NIF-building deps expect (hexpm/elixir ships them with OTP).
RUN apt-get update \
 && apt-get install -y --no-install-recommends elixir erlang-dev \
 && rm -rf /var/lib/apt/lists/*
CMD ["iex"]
