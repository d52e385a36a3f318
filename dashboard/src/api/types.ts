// Names for the API's shapes, all taken from the generated schema.
import type { components } from "./schema";

type S = components["schemas"];
export type Pair = S["PairView"];
export type RouteStep = S["RouteStep"];
export type Provider = S["ProviderView"];
export type PairSummary = S["PairSummaryView"];
export type SeriesPoint = S["SeriesPointView"];
export type Session = S["SessionView"];
export type Sms = S["SmsView"];
export type Alert = S["AlertView"];
export type User = S["UserView"];
export type Role = S["RoleView"];
export type Me = User;

/// Every role that may sign in to the dashboard.
export const ROLES = ["admin", "operator", "viewer"] as const;
