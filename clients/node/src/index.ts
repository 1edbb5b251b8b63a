// genledger: the Node client. See README.md.
export { Client, seg, withId } from "./client.js";
export { WsClient, type SubscribeOptions } from "./ws.js";
export { Hold, runWithHold, type Gate } from "./hold.js";
export { isUnavailable, type ClientOptions, type FailOpenInfo } from "./options.js";
export * from "./errors.js";
export type * from "./types.js";
