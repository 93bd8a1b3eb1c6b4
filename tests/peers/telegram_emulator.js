// Starts the telegram-test-api emulator on loopback: node telegram_emulator.js PORT
// Prints "telegram-test-api ready on http://127.0.0.1:PORT" once it listens.
'use strict';

const TelegramServer = require('telegram-test-api');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node telegram_emulator.js PORT');
  process.exit(2);
}

// When a webhook target refuses a push, the emulator rejects a promise nobody awaits;
// without this guard Node exits and every later test loses its peer.
process.on('unhandledRejection', (reason) => {
  console.error(`telegram-test-api: unhandled rejection: ${reason}`);
});

const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 60 });

async function stop() {
  await server.stop();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.start().then(
  () => console.log(`telegram-test-api ready on ${server.config.apiURL}`),
  (error) => {
    console.error(`telegram-test-api failed to start: ${error}`);
    process.exit(1);
  },
);
