export * from "./User.ts"
