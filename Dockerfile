# cf-orch: the dashboard, API and scheduler in one container.
# Build: docker build -t cf-orch .      Run: see compose.yaml.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY CfOrch.Core/CfOrch.Core.csproj CfOrch.Core/
COPY CfOrch.Web/CfOrch.Web.csproj CfOrch.Web/
# The image's platform (BuildKit sets TARGETARCH: amd64, arm64): the publish is precompiled for it (ReadyToRun).
ARG TARGETARCH
RUN dotnet restore CfOrch.Web/CfOrch.Web.csproj -a "${TARGETARCH:-amd64}"
COPY profiles/ profiles/
COPY wwwroot-assets/ wwwroot-assets/
COPY CfOrch.Core/ CfOrch.Core/
COPY CfOrch.Web/ CfOrch.Web/
# The same publish that CI runs (./test.sh).
RUN dotnet publish CfOrch.Web/CfOrch.Web.csproj -c Release -a "${TARGETARCH:-amd64}" -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data \
    && chown "$APP_UID" /data
# The NVIDIA container runtime injects libnvidia-ml.so.1 (NVML) when these ask for the utility capability.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=utility \
    ASPNETCORE_ENVIRONMENT=Production \
    CfOrch__DataDir=/data
WORKDIR /app
COPY --from=build /app .
USER $APP_UID
VOLUME ["/data"]
EXPOSE 7700
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7700/api/health || exit 1
ENTRYPOINT ["dotnet", "CfOrch.Web.dll"]
