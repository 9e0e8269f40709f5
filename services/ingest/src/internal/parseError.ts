import { ParseResult } from "effect"

/** A decode failure as one line: `to.users.0: Expected ...; kind: ...`. */
export const describe = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")
