# The service image: gateway, consumer and tools share it; the compose file picks the command.
FROM node:20-alpine
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY sql ./sql
COPY src ./src
USER node
EXPOSE 8000
CMD ["npm", "run", "start:gateway"]
