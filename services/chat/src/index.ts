export * from "./Room.ts"
export { routes } from "./http.ts"
