/**
 * The API's types, by name, from the types generated out of the server's
 * OpenAPI document (`src/generated/openapi.ts`, made by `npm run
 * generate:types`; never edited by hand).
 */

import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** An org's concurrency snapshot. */
export type Org = Schemas["Org"];
/** One agent of an org: its reservations and calls per type. */
export type Agent = Schemas["Agent"];
/** One call. */
export type Call = Schemas["Call"];
/** `webcall`, `chat`, `outbound` or `inbound`. */
export type CallType = Schemas["CallType"];
/** `queued`, `active` or `ended`. */
export type CallState = Schemas["CallState"];
/** The part of the pool an admitted call took: `reserved`, `shared` or `burst` (above the limit). */
export type SlotKind = Schemas["Slot"];
/** Why a queued call can never be admitted as its org is configured now. */
export type BlockedReason = Schemas["BlockedReason"];
/** An agent's caps: the most active calls per type and in total (null: no cap). */
export type Caps = Schemas["Caps"];
/** Why a call ended. */
export type EndReason = Schemas["EndReason"];
/** What an org key may do: `admin` or `runtime`. */
export type Role = Schemas["Role"];
/** A count per call type (reservations, active and queued calls). */
export type PerType = Schemas["PerType"];
/** One state change of an org. */
export type Event = Schemas["Event"];
/** A page of events (`GET /v1/orgs/{org}/events`). */
export type EventPage = Schemas["EventPage"];
/** An org key as listed (never its secret). */
export type KeyInfo = Schemas["KeyInfo"];
/** A new org key, with its secret (shown only once). */
export type NewKey = Schemas["NewKey"];
/** A page of orgs. */
export type OrgList = Schemas["OrgList"];
/** A page of calls. */
export type CallList = Schemas["CallList"];
/** A page of keys. */
export type KeyList = Schemas["KeyList"];
/** The dashboard's chart: active and queued calls over the last minutes. */
export type HistoryPage = Schemas["HistoryPage"];
/** `GET /v1/orgs/{org}/usage`: the org's usage by UTC hour or day. */
export type Usage = Schemas["Usage"];
/** One step of {@link Usage}. */
export type UsageStep = Schemas["UsageStep"];
/** The figures of one step, per call type or overall. */
export type UsageFigures = Schemas["UsageFigures"];
/** Every error code the API answers with. */
export type ErrorCode = Schemas["ErrorCode"];
/** The `error` object of an error answer. */
export type ApiErrorBody = Schemas["ApiError"];
/** `POST /v1/orgs`: an own `limit`, a `plan`, or both. */
export type CreateOrg = Schemas["CreateOrg"];
/**
 * A plan: a tier of limit and burst that orgs are put on (`PlanTier` in the
 * OpenAPI document, where `Plan` is capacity planning's recommendation).
 */
export type Plan = Schemas["PlanTier"];
/** `GET /v1/plans`. */
export type PlanList = Schemas["PlanList"];
/** `POST /v1/plans`. */
export type CreatePlan = Schemas["CreatePlan"];
/** `PATCH /v1/plans/{plan}`: a missing field is unchanged. */
export type UpdatePlan = Schemas["UpdatePlan"];
/** Where an org's limit or burst comes from: `plan` or `org` (its own). */
export type Source = Schemas["Source"];
/** `POST /v1/orgs/{org}/calls`. */
export type AcquireCall = Schemas["AcquireCall"];
/** `POST /v1/orgs/{org}/keys`. */
export type CreateKey = Schemas["CreateKey"];

/** A page of a list: its items and the cursor of the next page (null on the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
