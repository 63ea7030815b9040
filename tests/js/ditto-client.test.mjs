// Compatibility test: Eclipse Ditto's official JavaScript client for Node.js
// (@eclipse-ditto/ditto-javascript-client-node, pinned in package.json) against a running
// twinwire.
//
//   TWINWIRE_HOST=127.0.0.1:18181 node tests/js/ditto-client.test.mjs
//
// Environment: TWINWIRE_HOST (host:port, default 127.0.0.1:8080), TWINWIRE_ALICE and
// TWINWIRE_BOB ("user:password", defaults alice:wonderland and bob:builder). Both users must be
// known to twinwire with the auth subjects nginx:<user>.
//
// What is covered, all through the client library:
//   a. HTTP: a thing is created, its attributes and a feature (with properties) modified and
//      read back; the thing's policy gets an entry for bob.
//   b. WebSocket, twin channel: events are requested and subscribed to; modifications made
//      over HTTP arrive as events with the right topic, path and value.
//   c. Live messages: bob's WebSocket client (live channel) subscribes to the thing's inbox and
//      answers; alice sends messages over HTTP and over her own live WebSocket client and gets
//      the answer's status and payload.
//   d. Custom acknowledgement: bob's twin WebSocket client declares a label on connect,
//      receives the twin event that requests it and issues the acknowledgement; alice's HTTP
//      modify requesting twin-persisted and that label is answered 200 with both acks.
//
// Where the client has no API for a step, the test uses the client's own extension points
// (a custom AuthProvider, a custom things handle) or, for the two Ditto Protocol messages the
// client cannot send (a message response and an acknowledgement, both need a top-level
// "status"), the client's WebSocket send method; each place says so in a comment.
//
// Exit code 0 on success, 1 with a message on failure; gives up after 60 s.

import assert from 'node:assert/strict';
import {
  AccessRight,
  DefaultMatchOptions,
  DefaultMessagesOptions,
  DefaultThingsHandle,
  DittoNodeClient,
  Entry,
  Feature,
  Features,
  HttpVerb,
  NodeHttpBasicAuth,
  NodeWebSocketBasicAuth,
  Resource,
  Resources,
  Subjects,
  Thing,
} from '@eclipse-ditto/ditto-javascript-client-node';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

const HOST = process.env.TWINWIRE_HOST || '127.0.0.1:8080';
const credentials = (variable, fallback) => {
  const value = process.env[variable] || fallback;
  const colon = value.indexOf(':');
  assert.ok(colon > 0, `${variable} must be user:password, got ${JSON.stringify(value)}`);
  return { user: value.slice(0, colon), password: value.slice(colon + 1) };
};
const ALICE = credentials('TWINWIRE_ALICE', 'alice:wonderland');
const BOB = credentials('TWINWIRE_BOB', 'bob:builder');

const SUFFIX = `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
const THING_ID = `org.eclipse.ditto:js-${SUFFIX}`;
const [NAMESPACE, NAME] = [THING_ID.slice(0, THING_ID.indexOf(':')), THING_ID.slice(THING_ID.indexOf(':') + 1)];
const ACK_LABEL = `js-ack-${SUFFIX}`;

// ---------------------------------------------------------------------------------------------
// Harness: steps, timeouts, failure reporting, clean shutdown.

let closing = false;
const webSocketClients = [];

function fail(error) {
  const detail = error instanceof Error ? (error.stack || error.message) : inspect(error);
  console.error(`FAIL: ${detail}`);
  process.exit(1);
}

function inspect(value) {
  if (value instanceof Map) {
    return `Map(${JSON.stringify(Object.fromEntries(value))})`;
  }
  try {
    // Response objects of the client keep their data in getters (status, body, headers).
    if (value && typeof value === 'object' && 'status' in value && 'body' in value) {
      return JSON.stringify({ status: value.status, body: value.body });
    }
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// The client rejects failed HTTP requests with a BasicErrorResponse (status + body) and failed
// WebSocket requests with the response body; turn both into readable errors.
function describeRejection(what, reason) {
  if (reason instanceof Error) {
    reason.message = `${what}: ${reason.message}`;
    return reason;
  }
  return new Error(`${what}: rejected with ${inspect(reason)}`);
}

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    console.error(`not ok - ${name}`);
    throw describeRejection(`step "${name}"`, error);
  }
  console.log(`ok - ${name} (${Date.now() - started} ms)`);
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A Ditto Protocol header by case-insensitive name. */
function header(headers, name) {
  const key = Object.keys(headers ?? {}).find(k => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/** A promise with its resolve/reject exposed, for values delivered to subscription callbacks. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Runs a subscription callback, routing assertion failures to the waiting step. */
function guarded(waiter, callback) {
  return message => {
    try {
      callback(message);
    } catch (error) {
      waiter.reject(error);
    }
  };
}

process.on('unhandledRejection', reason => {
  // ditto-javascript-client-node 3.9.1: when a WebSocket client is closed, its socket's 'close'
  // handler asks for a reconnect, which is refused ('Reconnect disabled') and the refusal is
  // re-thrown from a promise nobody awaits. That is expected during shutdown only.
  if (closing && reason === 'Reconnect disabled') {
    return;
  }
  fail(describeRejection('unhandled rejection', reason));
});
process.on('uncaughtException', fail);

const overall = setTimeout(() => fail(new Error(`overall timeout of ${OVERALL_TIMEOUT_MS} ms exceeded`)), OVERALL_TIMEOUT_MS);
overall.unref();

// ---------------------------------------------------------------------------------------------
// Clients.

/**
 * A things handle with one more method: a modify that hands back the full response (status,
 * headers, body) whatever its 2xx status. The stock putAttribute only accepts 201 and 204 and
 * rejects anything else with "Received unknown status code: …", but a modify that requests
 * custom acknowledgements is answered 200 with the aggregated acknowledgements, by Ditto as by
 * twinwire. The handle is plugged in through the builder's public withCustomThingsHandle and
 * sends with the client's own request sender.
 */
class AckAwareThingsHandle extends DefaultThingsHandle {
  static getInstance(builder) {
    return new AckAwareThingsHandle(builder.buildInstance('things'));
  }

  putAttributeWithResponse(thingId, attributePath, value, options) {
    return this.requestFactory.fetchGenericJsonRequest({
      verb: HttpVerb.PUT,
      id: thingId,
      path: `attributes/${attributePath}`,
      requestOptions: options,
      payload: value,
    });
  }
}

function httpClient({ user, password }) {
  return DittoNodeClient.newHttpClient()
    .withoutTls()
    .withDomain(HOST)
    .withAuthProvider(NodeHttpBasicAuth.newInstance(user, password))
    .withCustomThingsHandle(AckAwareThingsHandle.getInstance)
    .build();
}

/**
 * The client has no builder option for Ditto's `declared-acks` connect parameter. Its
 * AuthProvider interface may add query parameters to the URL it connects to (its documentation
 * gives `x-ditto-pre-authenticated=…` as the example), so this provider
 * adds `declared-acks=<labels>` to the WebSocket URL and leaves the headers alone.
 */
class DeclaredAcks {
  constructor(...labels) {
    this.labels = labels;
  }

  authenticateWithUrl(url) {
    return url.withParams([...url.queryParams, `declared-acks=${encodeURIComponent(this.labels.join(','))}`]);
  }

  authenticateWithHeaders(headers) {
    return headers;
  }
}

/**
 * Builds a WebSocket client and waits for its connection: the bufferless client refuses to
 * send before it is connected, and tells only its state handler when it is.
 */
async function webSocketClient(name, { user, password }, channel, ...extraAuthProviders) {
  const connection = deferred();
  const stateHandler = {
    connected: () => connection.resolve(),
    disconnected: () => connection.reject(new Error(`WebSocket client ${name}: could not connect`)),
    reconnecting: () => {
      if (!closing) {
        console.error(`WebSocket client ${name}: connection lost, reconnecting`);
      }
    },
    buffering: () => {},
    backPressure: () => {},
    bufferFull: () => {},
  };
  const builder = DittoNodeClient.newWebSocketClient()
    .withoutTls()
    .withDomain(HOST)
    .withAuthProvider(NodeWebSocketBasicAuth.newInstance(user, password), ...extraAuthProviders)
    .withoutBuffer()
    .withStateHandler(stateHandler);
  const client = (channel === 'live' ? builder.liveChannel() : builder.twinChannel()).build();
  webSocketClients.push(client);
  await withTimeout(connection.promise, `WebSocket client ${name} to connect`);
  return client;
}

/**
 * Sends one Ditto Protocol message as it is. The client can only send envelopes of topic,
 * headers, path and value; a live message response and an acknowledgement also need the
 * top-level "status" (a message without one is a new message to the thing, for Ditto as for
 * twinwire, and an acknowledgement states its status). There is no public method for that and no
 * API to answer a message or to acknowledge a signal, so this uses the send method of the client's
 * connection handler (DittoWebSocketClient -> WebSocketRequestHandler -> ResilienceHandler,
 * whose interface declares send(message: string)); the fields on the way there are private in
 * the client's TypeScript declarations.
 */
function sendRaw(client, envelope) {
  const resilienceHandler = client.responseHandler?.resilienceHandler;
  assert.equal(typeof resilienceHandler?.send, 'function', 'the client no longer has the internal send method this test relies on');
  return resilienceHandler.send(JSON.stringify(envelope));
}

// ---------------------------------------------------------------------------------------------
// The test.

async function main() {
  console.log(`twinwire at ${HOST}; thing ${THING_ID}; ack label ${ACK_LABEL}`);
  const alice = httpClient(ALICE);
  const bob = httpClient(BOB);
  const things = alice.getThingsHandle();
  const features = alice.getFeaturesHandle(THING_ID);
  let policyId;

  // a. HTTP ----------------------------------------------------------------------------------
  await step('HTTP: create a thing with attributes and a feature', async () => {
    const thing = new Thing(
      THING_ID,
      undefined,
      { manufacturer: 'ACME', location: { room: 'kitchen' } },
      Features.fromObject({ lamp: { properties: { on: false, level: 10 } } }),
    );
    const created = await things.putThing(thing);
    assert.equal(created.status, 201);
    assert.ok(created.wasCreated());
    assert.equal(created.body.thingId, THING_ID);
    assert.deepEqual(created.body.attributes, { manufacturer: 'ACME', location: { room: 'kitchen' } });
    assert.deepEqual(created.body.features.lamp.properties, { on: false, level: 10 });
    policyId = created.body.policyId;
    assert.ok(policyId, 'the created thing has a policy');
  });

  await step('HTTP: modify and retrieve attributes', async () => {
    const added = await things.putAttribute(THING_ID, 'serial', 'SN-4711');
    assert.equal(added.status, 201);
    assert.equal(added.body, 'SN-4711');
    const changed = await things.putAttribute(THING_ID, 'location/room', 'hall');
    assert.equal(changed.status, 204);
    assert.ok(changed.wasUpdated());
    const merged = await things.patchAttributes(THING_ID, { location: { floor: 2 }, manufacturer: null });
    assert.equal(merged.status, 204);
    assert.equal(await things.getAttribute(THING_ID, 'location/room'), 'hall');
    assert.deepEqual(await things.getAttributes(THING_ID), {
      serial: 'SN-4711',
      location: { room: 'hall', floor: 2 },
    });
  });

  await step('HTTP: modify and retrieve a feature and its properties', async () => {
    const created = await features.putFeature(new Feature('sensor', undefined, { temperature: 21.5 }));
    assert.equal(created.status, 201);
    assert.equal(created.body.id, 'sensor');
    assert.deepEqual(created.body.properties, { temperature: 21.5 });
    const level = await features.putProperty('lamp', 'level', 42);
    assert.equal(level.status, 204);
    const properties = await features.putProperties('sensor', { temperature: 22, unit: 'C' });
    assert.equal(properties.status, 204);
    assert.equal(await features.getProperty('lamp', 'level'), 42);
    assert.deepEqual(await features.getProperties('sensor'), { temperature: 22, unit: 'C' });
    const lamp = await features.getFeature('lamp');
    assert.equal(lamp.id, 'lamp');
    assert.deepEqual(lamp.properties, { on: false, level: 42 });
    const thing = await things.getThing(THING_ID);
    assert.equal(thing.thingId, THING_ID);
    assert.equal(thing.policyId, policyId);
    assert.deepEqual(thing.attributes, { serial: 'SN-4711', location: { room: 'hall', floor: 2 } });
    assert.deepEqual(Object.keys(thing.features).sort(), ['lamp', 'sensor']);
    assert.deepEqual(thing.features.sensor.properties, { temperature: 22, unit: 'C' });
  });

  await step('HTTP: bob cannot see the thing until the policy grants him access', async () => {
    await assert.rejects(bob.getThingsHandle().getThing(THING_ID), error => {
      assert.equal(error.status, 404, `bob's read was answered ${inspect(error)}`);
      return true;
    });
    const entry = new Entry(
      'DEVICE',
      Subjects.fromObject({ [`nginx:${BOB.user}`]: { type: 'the device' } }),
      Resources.fromObject({
        'thing:/': { grant: [AccessRight.Read], revoke: [] },
        'message:/': { grant: [AccessRight.Read, AccessRight.Write], revoke: [] },
      }),
    );
    const put = await alice.getPoliciesHandle().putEntry(policyId, entry);
    assert.equal(put.status, 201);
    const stored = await alice.getPoliciesHandle().getEntry(policyId, 'DEVICE');
    assert.deepEqual(stored.resources['message:/'].grant, ['READ', 'WRITE']);
    const seen = await bob.getThingsHandle().getThing(THING_ID);
    assert.equal(seen.thingId, THING_ID);
    await assert.rejects(bob.getThingsHandle().putAttribute(THING_ID, 'serial', 'stolen'), error => {
      assert.equal(error.status, 403, `bob's write was answered ${inspect(error)}`);
      return true;
    });
  });

  // b. WebSocket events ----------------------------------------------------------------------
  const aliceTwin = await webSocketClient('alice/twin', ALICE, 'twin');
  await step('WebSocket: events of modifications made over HTTP', async () => {
    const events = aliceTwin.getEventsHandle();
    await withTimeout(events.requestEvents(), 'START-SEND-EVENTS:ACK');
    const attributeEvent = deferred();
    const propertyEvent = deferred();
    const attributeSubscription = events.subscribeToAttribute(THING_ID, 'location/room', guarded(attributeEvent, event => {
      attributeEvent.resolve(event);
    }));
    const propertySubscription = events.subscribeToFeature(THING_ID, 'lamp', guarded(propertyEvent, event => {
      propertyEvent.resolve(event);
    }), 'modified');
    assert.equal((await things.putAttribute(THING_ID, 'location/room', 'garage')).status, 204);
    assert.equal((await features.putProperty('lamp', 'on', true)).status, 204);

    const attribute = await withTimeout(attributeEvent.promise, 'the attribute event');
    assert.equal(attribute.topic, `${NAMESPACE}/${NAME}/things/twin/events/modified`);
    assert.equal(attribute.action, 'modified');
    assert.equal(attribute.path, '/attributes/location/room');
    assert.equal(attribute.value, 'garage');
    assert.equal(typeof attribute.headers['correlation-id'], 'string');

    const property = await withTimeout(propertyEvent.promise, 'the feature property event');
    assert.equal(property.topic, `${NAMESPACE}/${NAME}/things/twin/events/modified`);
    assert.equal(property.path, '/features/lamp/properties/on');
    assert.equal(property.value, true);
    events.deleteSubscription(attributeSubscription);
    events.deleteSubscription(propertySubscription);
  });

  // c. Live messages -------------------------------------------------------------------------
  const bobLive = await webSocketClient('bob/live', BOB, 'live');
  const aliceLive = await webSocketClient('alice/live', ALICE, 'live');
  await step('WebSocket: bob answers live messages sent over HTTP and over a WebSocket', async () => {
    const inbox = bobLive.getMessagesHandle();
    await withTimeout(inbox.requestMessages(), 'START-SEND-MESSAGES:ACK');
    const received = [];
    const answering = deferred();
    inbox.subscribeToThing(THING_ID, guarded(answering, message => {
      assert.equal(message.topic, `${NAMESPACE}/${NAME}/things/live/messages/ask`);
      assert.equal(message.path, '/inbox/messages/ask');
      // Ditto Protocol header names are case-insensitive: the client's WebSocket sender writes
      // "Content-Type", and Ditto (like twinwire) keeps the sender's spelling when forwarding.
      assert.equal(header(message.headers, 'content-type'), 'application/json');
      received.push(message.value);
      // Raw send: the client has no way to answer a message (see sendRaw).
      sendRaw(bobLive, {
        topic: message.topic,
        headers: {
          'correlation-id': message.headers['correlation-id'],
          'content-type': 'application/json',
        },
        path: message.path,
        value: { answer: `${message.value.question} yes`, from: 'bob' },
        status: 200,
      }).catch(error => answering.reject(error));
    }), 'ask', 'inbox');

    const overHttp = alice.getMessagesHandle().messageToThing(
      THING_ID, 'ask', { question: 'over HTTP?' }, 'application/json',
      DefaultMessagesOptions.getInstance().withTimeout(10),
    );
    const httpAnswer = await withTimeout(Promise.race([overHttp, answering.promise]), 'the answer to the HTTP message');
    assert.equal(httpAnswer.status, 200);
    assert.deepEqual(httpAnswer.body, { answer: 'over HTTP? yes', from: 'bob' });
    assert.match(String(httpAnswer.headers.get('content-type')), /^application\/json/);

    const overWebSocket = aliceLive.getMessagesHandle().messageToThing(
      THING_ID, 'ask', { question: 'over a WebSocket?' }, 'application/json',
      DefaultMessagesOptions.getInstance().addHeader('timeout', '10'),
    );
    const wsAnswer = await withTimeout(Promise.race([overWebSocket, answering.promise]), 'the answer to the WebSocket message');
    assert.equal(wsAnswer.status, 200);
    assert.deepEqual(wsAnswer.body, { answer: 'over a WebSocket? yes', from: 'bob' });
    assert.deepEqual(received, [{ question: 'over HTTP?' }, { question: 'over a WebSocket?' }]);
  });

  // d. Custom acknowledgement ----------------------------------------------------------------
  const bobTwin = await webSocketClient('bob/twin+declared-acks', BOB, 'twin', new DeclaredAcks(ACK_LABEL));
  await step('WebSocket: bob issues a custom acknowledgement requested by an HTTP modify', async () => {
    const events = bobTwin.getEventsHandle();
    await withTimeout(events.requestEvents(), 'START-SEND-EVENTS:ACK');
    const acknowledged = deferred();
    events.subscribeToAttribute(THING_ID, 'serial', guarded(acknowledged, event => {
      assert.equal(event.topic, `${NAMESPACE}/${NAME}/things/twin/events/modified`);
      assert.equal(event.value, 'SN-0815');
      const requested = String(event.headers['requested-acks'] ?? '');
      assert.ok(requested.includes(ACK_LABEL), `the event requests ${ACK_LABEL}: ${inspect(event.headers)}`);
      // Raw send: the client has no way to issue an acknowledgement (see sendRaw).
      sendRaw(bobTwin, {
        topic: `${NAMESPACE}/${NAME}/things/twin/acks/${ACK_LABEL}`,
        headers: { 'correlation-id': event.headers['correlation-id'], 'content-type': 'application/json' },
        path: '/',
        value: { seenBy: 'bob' },
        status: 200,
      }).then(() => acknowledged.resolve(), error => acknowledged.reject(error));
    }));

    const options = DefaultMatchOptions.getInstance()
      .addHeader('requested-acks', `twin-persisted,${ACK_LABEL}`)
      .addHeader('timeout', '10');
    const modify = things.putAttributeWithResponse(THING_ID, 'serial', 'SN-0815', options);
    const [response] = await withTimeout(Promise.all([modify, acknowledged.promise]), 'the acknowledged modify');
    assert.equal(response.status, 200, `aggregated acks: ${inspect(response.body)}`);
    assert.deepEqual(Object.keys(response.body).sort(), [ACK_LABEL, 'twin-persisted'].sort());
    assert.equal(response.body['twin-persisted'].status, 204);
    assert.equal(response.body[ACK_LABEL].status, 200);
    assert.deepEqual(response.body[ACK_LABEL].payload, { seenBy: 'bob' });
    assert.equal(await things.getAttribute(THING_ID, 'serial'), 'SN-0815');
  });

  await step('HTTP: delete the thing', async () => {
    const deleted = await things.deleteThing(THING_ID);
    assert.equal(deleted.status, 204);
  });
}

try {
  await main();
} catch (error) {
  fail(error);
}
closing = true;
for (const client of webSocketClients) {
  client.close();
}
clearTimeout(overall);
console.log('PASS: the Ditto JavaScript client works against twinwire');
// Give the close frames a moment to go out, then end regardless of lingering sockets.
setTimeout(() => process.exit(0), 200);
