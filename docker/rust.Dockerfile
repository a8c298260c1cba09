# Stand-in for rust:1-bookworm with the musl target added (see base-images.sh). The build context
# holds `toolchain/`, a trimmed copy of the host's rustup toolchain: nothing can be downloaded
# from static.rust-lang.org here, and Debian 12's rustc 1.63 predates edition 2024.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# gcc is the linker driver rustc calls for both targets; libc6-dev links the build scripts
# (host target, glibc). The musl target brings its own crt objects and libc.a.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
# The official rust image's layout: CARGO_HOME in /usr/local/cargo, tools on PATH.
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN rustc --version && cargo --version
