# syntax=docker/dockerfile:1
# Weir as one static-ish executable on a distroless base.
#   docker build -t weir .
#   docker run -p 8080:8080 -v "$PWD/weir.kdl:/etc/weir/weir.kdl:ro" weir

# Build: npm ci installs the pinned Node 24 (the `node` dev dependency) that the binary is made from.
FROM node:24-bookworm AS build
WORKDIR /src
# Sources first: npm ci's lifecycle scripts may build the first-party plugins.
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci && npm run build:binary && ./dist/weir version

# Run: glibc + libstdc++ (what Node links against), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="weir" \
      org.opencontainers.image.description="Reverse proxy and API gateway programmed by WebAssembly plugins" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/dist/weir /weir
COPY deploy/weir.kdl /etc/weir/weir.kdl
# The binary extracts its plugin worker into TMPDIR at start: keep /tmp writable
# (an emptyDir when the root filesystem is read-only).
ENV TMPDIR=/tmp
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/weir", "run", "-c", "/etc/weir/weir.kdl"]
