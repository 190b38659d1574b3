// The Socket.IO side of the bench's load generator (loadgen.mjs): one socket.io-client connection per
// user, websocket transport only, no reconnection, one engine.io connection each (forceNew: without
// it socket.io-client multiplexes every socket to the same URL over a single WebSocket). The server is
// socketio-node.mjs; its events mirror chatmesh's frames (see there):
//   emit  'send'     {to, body}, ack -> {type:'ack', msg, status} | {type:'error', code}
//   emit  'presence' {users},    ack -> {type:'presence', users: {name: 'online'|'offline'}}
//   on    'message'  {type:'message', msg, from, to, body, ts}
import { io } from 'socket.io-client';

/**
 * Opens the socket of `user` at `url` (http://host:port). Resolves with it once connected (the
 * counterpart of chatmesh's `welcome`); `onMessage(frame)` hears `message` events, `onClose(reason)`
 * a disconnect after the connect.
 */
export function openSocketIo(url, user, timeoutMs, { onMessage, onClose }) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ['websocket'],
      auth: { user },
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
      perMessageDeflate: false,
    });
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error(`${user}: not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.on('disconnect', (reason) => onClose(reason));
      resolve(socket);
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.disconnect();
      reject(new Error(`${user}: ${err.message}`));
    });
    socket.on('message', onMessage);
  });
}

/** Emits `event` with `payload` and resolves with the server's ack (bounded). */
export function requestSocketIo(socket, event, payload, timeoutMs) {
  return socket.timeout(timeoutMs).emitWithAck(event, payload);
}
