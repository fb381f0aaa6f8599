# Production image: PostgreSQL and Redis are expected outside (DATABASE_URL, REDIS_URL); without them the node falls
# back to embedded PGlite under /data, which suits a single-container trial only.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production PORT=8091 DATA_DIR=/data
COPY package.json package-lock.json ./
# Dev dependencies are needed once, to generate the Prisma client and typed documents; tsx runs the TypeScript.
RUN npm ci --include=dev --no-audit --no-fund
COPY . .
RUN npm run generate && mkdir -p /data && chown node:node /data
USER node
EXPOSE 8091
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8091/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--max-semi-space-size=64", "--import", "tsx", "src/main.ts"]
