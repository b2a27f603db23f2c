# mallet: HTTP drain + syslog listener + action worker. Build: docker build -t mallet .
FROM node:24-bookworm-slim AS build
WORKDIR /app
# re2 is a native addon: node-gyp needs python3, make and g++ when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY bin ./bin
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY README.md ./
USER node
EXPOSE 3000
CMD ["node", "--max-semi-space-size=32", "--min-semi-space-size=32", "bin/mallet.js", "serve"]
