# Static fledge binary on a distroless base: no shell, no package manager.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum* ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fledge ./cmd/fledge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fledge /usr/local/bin/fledge
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/fledge", "health"]
ENTRYPOINT ["/usr/local/bin/fledge"]
CMD ["proxy"]
