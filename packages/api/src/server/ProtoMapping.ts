/**
 * How `WeftApi`'s Schemas and the shipped `.proto` files (packages/api/proto/weft/v1) meet:
 * which proto method is which call, whether a message matches a Schema (`mismatches`, which a
 * test runs and the gRPC door runs before it serves), and the conversion of a message to the
 * Schema's JSON form and back.
 *
 * The Schemas are the source of truth; the `.proto` files restate them by these rules (also in
 * common.proto and docs/api.md):
 *
 * - call `group.name` is rpc `Name` of service `weft.v1.Group`;
 * - a Schema field `userId` is proto field `user_id` (proto-loader gives it back as `userId`);
 * - a required string, number or boolean is the scalar (`string`; `int64` or another integer
 *   type for an integer, any numeric type for a number; `bool`);
 * - an optional one is its wrapper (`google.protobuf.StringValue`, `Int64Value`, `BoolValue`,
 *   ...), so that absent and empty stay apart, as they are behind the other doors;
 * - `Schema.Unknown` (any JSON value) is `google.protobuf.Value`;
 * - `Schema.NullOr(T)` field `f` is a oneof `f_or_null` of `T f` and `google.protobuf.NullValue f_null`;
 * - a union of tagged structs is a message with one oneof, one field per tag (`Utc` is `utc`);
 * - an array is a repeated field; a reply that is an array is a message with `repeated items`;
 *   a call without payload or reply has an empty message.
 */
import type * as ProtoLoader from "@grpc/proto-loader"
import { Either, Schema, SchemaAST } from "effect"
import type { CallSchemas } from "../Api.ts"

// ---------------------------------------------------------------------------
// Shapes: what the doors need to know of a Schema
// ---------------------------------------------------------------------------

export interface StructShape {
  readonly kind: "struct"
  readonly fields: ReadonlyArray<{ readonly name: string; readonly optional: boolean; readonly shape: Shape }>
}

/** A Schema's encoded (JSON) side, reduced to what a protobuf message can say. */
export type Shape =
  | { readonly kind: "string" }
  | { readonly kind: "number"; readonly integer: boolean }
  | { readonly kind: "boolean" }
  | { readonly kind: "json" }
  | { readonly kind: "void" }
  | { readonly kind: "array"; readonly item: Shape }
  | { readonly kind: "nullable"; readonly value: Shape }
  | { readonly kind: "tagged"; readonly members: ReadonlyArray<{ readonly tag: string; readonly struct: StructShape }> }
  | StructShape

const isInt = (ast: SchemaAST.AST): boolean => ast.annotations[SchemaAST.SchemaIdAnnotationId] === Schema.IntSchemaId

const literalKind = (literal: SchemaAST.LiteralValue): Shape | "null" => {
  if (literal === null) return "null"
  switch (typeof literal) {
    case "string":
      return { kind: "string" }
    case "number":
      return { kind: "number", integer: Number.isInteger(literal) }
    case "boolean":
      return { kind: "boolean" }
    default:
      return { kind: "string" }
  }
}

/** The shape of `ast`, or why it has none (a Schema the mapping does not cover). */
export const shapeOf = (ast: SchemaAST.AST, path = "payload"): Either.Either<Shape, string> => {
  switch (ast._tag) {
    case "Refinement":
      return Either.map(shapeOf(ast.from, path), (shape) =>
        shape.kind === "number" && isInt(ast) ? { kind: "number", integer: true } : shape)
    case "Transformation":
      return shapeOf(ast.from, path)
    case "Suspend":
      return shapeOf(ast.f(), path)
    case "StringKeyword":
    case "TemplateLiteral":
      return Either.right({ kind: "string" })
    case "NumberKeyword":
      return Either.right({ kind: "number", integer: false })
    case "BooleanKeyword":
      return Either.right({ kind: "boolean" })
    case "UnknownKeyword":
    case "AnyKeyword":
      return Either.right({ kind: "json" })
    case "VoidKeyword":
      return Either.right({ kind: "void" })
    case "Literal": {
      const kind = literalKind(ast.literal)
      return kind === "null" ? Either.left(`${path}: a lone null`) : Either.right(kind)
    }
    case "TupleType": {
      const rest = ast.rest[0]
      if (ast.elements.length > 0 || ast.rest.length !== 1 || rest === undefined) return Either.left(`${path}: a tuple`)
      return Either.map(shapeOf(rest.type, `${path}[]`), (item): Shape => ({ kind: "array", item }))
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) return Either.left(`${path}: a record`)
      const fields: Array<StructShape["fields"][number]> = []
      for (const signature of ast.propertySignatures) {
        if (typeof signature.name !== "string") return Either.left(`${path}: a symbol key`)
        const type = signature.isOptional ? withoutUndefined(signature.type) : signature.type
        const shape = shapeOf(type, `${path}.${signature.name}`)
        if (Either.isLeft(shape)) return shape
        fields.push({ name: signature.name, optional: signature.isOptional, shape: shape.right })
      }
      return Either.right({ kind: "struct", fields })
    }
    case "Union":
      return unionShape(ast, path)
    default:
      return Either.left(`${path}: ${ast._tag} has no protobuf form`)
  }
}

const withoutUndefined = (ast: SchemaAST.AST): SchemaAST.AST => {
  if (ast._tag !== "Union") return ast
  const members = ast.types.filter((member) => member._tag !== "UndefinedKeyword")
  return members.length === 1 && members[0] !== undefined ? members[0] : SchemaAST.Union.make(members)
}

const tagOf = (ast: SchemaAST.AST): string | undefined => {
  if (ast._tag !== "TypeLiteral") return undefined
  const tag = ast.propertySignatures.find((signature) => signature.name === "_tag")
  return tag !== undefined && tag.type._tag === "Literal" && typeof tag.type.literal === "string" ? tag.type.literal : undefined
}

const unionShape = (ast: SchemaAST.Union, path: string): Either.Either<Shape, string> => {
  const members = ast.types.filter((member) => member._tag !== "UndefinedKeyword")
  // `Schema.Literal("a", "b")`: a union of literals of one kind is that kind.
  const literals = members.flatMap((member) => member._tag === "Literal" ? [literalKind(member.literal)] : [])
  if (literals.length === members.length) {
    const kinds = new Set(literals.map((kind) => kind === "null" ? "null" : kind.kind))
    const first = literals[0]
    if (kinds.size === 1 && first !== undefined && first !== "null") return Either.right(first)
  }
  const nonNull = members.filter((member) => !(member._tag === "Literal" && member.literal === null))
  const only = nonNull[0]
  if (nonNull.length === members.length - 1 && nonNull.length === 1 && only !== undefined) {
    return Either.map(shapeOf(only, path), (value): Shape => ({ kind: "nullable", value }))
  }
  const tagged: Array<{ tag: string; struct: StructShape }> = []
  for (const member of members) {
    const tag = tagOf(member)
    if (tag === undefined) return Either.left(`${path}: a union that is neither literals, nullable nor tagged structs`)
    const shape = shapeOf(member, `${path}<${tag}>`)
    if (Either.isLeft(shape)) return shape
    if (shape.right.kind !== "struct") return Either.left(`${path}<${tag}>: not a struct`)
    tagged.push({ tag, struct: { kind: "struct", fields: shape.right.fields.filter((field) => field.name !== "_tag") } })
  }
  return Either.right({ kind: "tagged", members: tagged })
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/** The proto package of the API. */
export const protoPackage = "weft.v1"

const upperFirst = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1)
const lowerFirst = (text: string): string => text.charAt(0).toLowerCase() + text.slice(1)

/** `notify.toUser` → service `weft.v1.Notify`, method `ToUser`. */
export const protoMethodOf = (tag: string): { readonly service: string; readonly method: string } => {
  const dot = tag.indexOf(".")
  return { service: `${protoPackage}.${upperFirst(tag.slice(0, dot))}`, method: upperFirst(tag.slice(dot + 1)) }
}

/** The field of a tagged union's oneof for `tag` (`Utc` → `utc`). */
const tagField = lowerFirst
const nullField = (name: string) => `${name}Null`
const nullOneof = (name: string) => `${name}OrNull`

// ---------------------------------------------------------------------------
// Descriptors, as proto-loader describes a message
// ---------------------------------------------------------------------------

const FieldDescriptor = Schema.Struct({
  name: Schema.String,
  label: Schema.String,
  type: Schema.String,
  typeName: Schema.String
})
type FieldDescriptor = typeof FieldDescriptor.Type
const MessageDescriptor = Schema.Struct({
  name: Schema.String,
  field: Schema.Array(FieldDescriptor),
  oneofDecl: Schema.Array(Schema.Struct({ name: Schema.String }))
})
type MessageDescriptor = typeof MessageDescriptor.Type
const decodeMessage = Schema.decodeUnknownEither(MessageDescriptor)

/** The message types of a loaded package, by full name, read through a Schema (proto-loader types them `object`). */
export const messagesOf = (definition: ProtoLoader.PackageDefinition): ReadonlyMap<string, MessageDescriptor> => {
  const messages = new Map<string, MessageDescriptor>()
  for (const [name, entry] of Object.entries(definition)) {
    if (!("format" in entry) || entry.format !== "Protocol Buffer 3 DescriptorProto") continue
    const decoded = decodeMessage(entry.type)
    if (Either.isRight(decoded)) messages.set(name, decoded.right)
  }
  return messages
}

const integerTypes = new Set(["TYPE_INT64", "TYPE_INT32", "TYPE_UINT64", "TYPE_UINT32", "TYPE_SINT64", "TYPE_SINT32"])
const numberTypes = new Set([...integerTypes, "TYPE_DOUBLE", "TYPE_FLOAT"])
const wrappers = {
  string: new Set(["google.protobuf.StringValue"]),
  integer: new Set(["google.protobuf.Int64Value", "google.protobuf.Int32Value", "google.protobuf.UInt64Value", "google.protobuf.UInt32Value"]),
  number: new Set([
    "google.protobuf.Int64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue"
  ]),
  boolean: new Set(["google.protobuf.BoolValue"])
}
const jsonValue = "google.protobuf.Value"
const nullValue = "google.protobuf.NullValue"

// ---------------------------------------------------------------------------
// Checking a message against a shape
// ---------------------------------------------------------------------------

/** Resolves a field's type name (proto-loader gives some relative to the package). */
const resolve = (messages: ReadonlyMap<string, MessageDescriptor>, typeName: string): string =>
  messages.has(typeName) ? typeName : `${protoPackage}.${typeName}`

const describe = (shape: Shape): string =>
  shape.kind === "number" ? (shape.integer ? "integer" : "number") : shape.kind

/**
 * Where message `typeName` differs from `shape` (a struct, or for a reply an array or void):
 * missing and extra fields, wrong types, wrong optionality. Empty when they match.
 */
export const mismatches = (
  messages: ReadonlyMap<string, MessageDescriptor>,
  typeName: string,
  shape: Shape,
  path: string
): ReadonlyArray<string> => {
  const message = messages.get(resolve(messages, typeName))
  if (message === undefined) return [`${path}: no message ${typeName}`]
  switch (shape.kind) {
    case "void":
      return message.field.length === 0 ? [] : [`${path}: ${message.name} should have no fields`]
    case "array":
      return checkStruct(messages, message, { kind: "struct", fields: [{ name: "items", optional: false, shape }] }, path)
    case "struct":
      return checkStruct(messages, message, shape, path)
    case "tagged":
      return checkTagged(messages, message, shape, path)
    default:
      return [`${path}: a ${describe(shape)} cannot be a whole message`]
  }
}

const checkStruct = (
  messages: ReadonlyMap<string, MessageDescriptor>,
  message: MessageDescriptor,
  shape: StructShape,
  path: string
): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const byName = new Map(message.field.map((field) => [field.name, field]))
  const used = new Set<string>()
  const take = (name: string): FieldDescriptor | undefined => {
    used.add(name)
    return byName.get(name)
  }
  for (const field of shape.fields) {
    const at = `${path}.${field.name}`
    if (field.shape.kind === "nullable") {
      const value = take(field.name)
      const isNull = take(nullField(field.name))
      if (value === undefined || isNull === undefined || !message.oneofDecl.some((oneof) => oneof.name === nullOneof(field.name))) {
        problems.push(`${at}: a nullable field is a oneof ${nullOneof(field.name)} of ${field.name} and ${nullField(field.name)}`)
        continue
      }
      if (isNull.typeName !== nullValue) problems.push(`${at}: ${nullField(field.name)} should be a ${nullValue}`)
      problems.push(...checkField(messages, value, field.shape.value, true, at))
      continue
    }
    const descriptor = take(field.name)
    if (descriptor === undefined) {
      problems.push(`${at}: no field ${field.name} in ${message.name}`)
      continue
    }
    problems.push(...checkField(messages, descriptor, field.shape, field.optional, at))
  }
  for (const field of message.field) {
    if (!used.has(field.name)) problems.push(`${path}: ${message.name}.${field.name} is not in the Schema`)
  }
  return problems
}

const checkTagged = (
  messages: ReadonlyMap<string, MessageDescriptor>,
  message: MessageDescriptor,
  shape: Extract<Shape, { kind: "tagged" }>,
  path: string
): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (message.oneofDecl.length !== 1) problems.push(`${path}: ${message.name} should be one oneof`)
  const names = new Set(shape.members.map((member) => tagField(member.tag)))
  for (const field of message.field) {
    if (!names.has(field.name)) problems.push(`${path}: ${message.name}.${field.name} is no tag of the Schema`)
  }
  for (const member of shape.members) {
    const field = message.field.find((candidate) => candidate.name === tagField(member.tag))
    if (field === undefined) problems.push(`${path}: no field ${tagField(member.tag)} for tag ${member.tag}`)
    else if (field.type !== "TYPE_MESSAGE") problems.push(`${path}.${member.tag}: should be a message`)
    else problems.push(...mismatches(messages, field.typeName, member.struct, `${path}<${member.tag}>`))
  }
  return problems
}

const checkField = (
  messages: ReadonlyMap<string, MessageDescriptor>,
  field: FieldDescriptor,
  shape: Shape,
  optional: boolean,
  at: string
): ReadonlyArray<string> => {
  const repeated = field.label === "LABEL_REPEATED"
  if (shape.kind === "array") {
    if (!repeated) return [`${at}: an array is a repeated field`]
    if (optional) return [`${at}: an optional array has no protobuf form`]
    return checkElement(messages, field, shape.item, at)
  }
  if (repeated) return [`${at}: a ${describe(shape)} is not a repeated field`]
  switch (shape.kind) {
    case "string":
    case "number":
    case "boolean": {
      if (optional) {
        const allowed = shape.kind === "number" ? (shape.integer ? wrappers.integer : wrappers.number) : wrappers[shape.kind]
        return field.type === "TYPE_MESSAGE" && allowed.has(field.typeName)
          ? []
          : [`${at}: an optional ${describe(shape)} is a wrapper (${Array.from(allowed).join(" | ")})`]
      }
      return checkElement(messages, field, shape, at)
    }
    default:
      return checkElement(messages, field, shape, at)
  }
}

/** A field's type (ignoring repetition and optionality) against `shape`. */
const checkElement = (
  messages: ReadonlyMap<string, MessageDescriptor>,
  field: FieldDescriptor,
  shape: Shape,
  at: string
): ReadonlyArray<string> => {
  switch (shape.kind) {
    case "string":
      return field.type === "TYPE_STRING" ? [] : [`${at}: should be a string`]
    case "boolean":
      return field.type === "TYPE_BOOL" ? [] : [`${at}: should be a bool`]
    case "number":
      return (shape.integer ? integerTypes : numberTypes).has(field.type) ? [] : [`${at}: should be ${shape.integer ? "an integer type" : "a numeric type"}`]
    case "json":
      return field.type === "TYPE_MESSAGE" && field.typeName === jsonValue ? [] : [`${at}: any JSON value is a ${jsonValue}`]
    case "struct":
    case "tagged":
      return field.type === "TYPE_MESSAGE" ? mismatches(messages, field.typeName, shape, at) : [`${at}: should be a message`]
    default:
      return [`${at}: a ${describe(shape)} has no protobuf form here`]
  }
}

// ---------------------------------------------------------------------------
// The calls against a loaded package
// ---------------------------------------------------------------------------

/** A call as the gRPC door serves it. */
export interface ProtoCall {
  readonly tag: string
  readonly service: string
  readonly method: string
  readonly payload: Shape
  readonly success: Shape
}

/**
 * Every call of `calls` matched to its method in `definition`, or every difference between them:
 * a call without a method, a method without a call, a message that differs from a Schema.
 */
export const match = (
  definition: ProtoLoader.PackageDefinition,
  calls: ReadonlyMap<string, CallSchemas>
): Either.Either<ReadonlyArray<ProtoCall>, ReadonlyArray<string>> => {
  const messages = messagesOf(definition)
  const problems: Array<string> = []
  const matched: Array<ProtoCall> = []
  const served = new Set<string>()
  for (const [tag, schemas] of calls) {
    const { method, service } = protoMethodOf(tag)
    served.add(`${service}/${method}`)
    const entry = definition[service]
    const methodDefinition = entry !== undefined && !("format" in entry) ? entry[method] : undefined
    if (methodDefinition === undefined) {
      problems.push(`${tag}: no rpc ${method} in service ${service}`)
      continue
    }
    if (methodDefinition.requestStream || methodDefinition.responseStream) problems.push(`${tag}: ${service}/${method} should be unary`)
    const payload = shapeOf(schemas.payloadSchema.ast, `${tag} payload`)
    const success = shapeOf(schemas.successSchema.ast, `${tag} reply`)
    if (Either.isLeft(payload) || Either.isLeft(success)) {
      problems.push(...[payload, success].flatMap((shape) => Either.isLeft(shape) ? [shape.left] : []))
      continue
    }
    const request = descriptorName(methodDefinition.requestType)
    const response = descriptorName(methodDefinition.responseType)
    const payloadShape: Shape = payload.right
    problems.push(...mismatches(messages, request, payloadShape, `${tag} request`))
    problems.push(...mismatches(messages, response, success.right, `${tag} reply`))
    matched.push({ tag, service, method, payload: payloadShape, success: success.right })
  }
  for (const [name, entry] of Object.entries(definition)) {
    if ("format" in entry || !name.startsWith(`${protoPackage}.`)) continue
    for (const method of Object.keys(entry)) {
      // grpc-js lists each method twice: by name and by its lower-camel alias (`originalName`).
      if (method !== upperFirst(method)) continue
      if (!served.has(`${name}/${method}`)) problems.push(`${name}/${method}: no call of WeftApi is this method`)
    }
  }
  return problems.length === 0 ? Either.right(matched) : Either.left(problems)
}

const descriptorName = (type: ProtoLoader.MessageTypeDefinition<object, object>): string => {
  const decoded = decodeMessage(type.type)
  return Either.isRight(decoded) ? decoded.right.name : "?"
}

// ---------------------------------------------------------------------------
// Converting values
// ---------------------------------------------------------------------------

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const scalarDefault = (shape: Shape): unknown =>
  shape.kind === "string" ? "" : shape.kind === "number" ? 0 : shape.kind === "boolean" ? false : undefined

/** A `google.protobuf.Value` (as proto-loader gives it) as the JSON value it stands for. */
export const fromProtoValue = (value: unknown): unknown => {
  if (!isRecord(value)) return null
  if ("structValue" in value) {
    const fields = isRecord(value["structValue"]) ? value["structValue"]["fields"] : undefined
    return Object.fromEntries(Object.entries(isRecord(fields) ? fields : {}).map(([key, item]) => [key, fromProtoValue(item)]))
  }
  if ("listValue" in value) {
    const values = isRecord(value["listValue"]) ? value["listValue"]["values"] : undefined
    return Array.isArray(values) ? values.map(fromProtoValue) : []
  }
  if ("numberValue" in value) return value["numberValue"]
  if ("stringValue" in value) return value["stringValue"]
  if ("boolValue" in value) return value["boolValue"]
  return null
}

/** A JSON value as a `google.protobuf.Value`. */
export const toProtoValue = (value: unknown): unknown => {
  if (value === null || value === undefined) return { nullValue: "NULL_VALUE" }
  if (typeof value === "number") return { numberValue: value }
  if (typeof value === "string") return { stringValue: value }
  if (typeof value === "boolean") return { boolValue: value }
  if (Array.isArray(value)) return { listValue: { values: value.map(toProtoValue) } }
  if (isRecord(value)) return { structValue: { fields: Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toProtoValue(item)])) } }
  return { nullValue: "NULL_VALUE" }
}

/**
 * A decoded request message (proto-loader's object: camel-case names, oneofs named) as the call's
 * payload in JSON form, for the Schema to check. Absent message fields stay absent, so the Schema
 * words a missing one as the other doors do.
 */
export const fromProto = (shape: Shape, value: unknown): unknown => {
  switch (shape.kind) {
    case "void":
      return undefined
    case "string":
    case "number":
    case "boolean":
      return value ?? scalarDefault(shape)
    case "json":
      return fromProtoValue(value)
    case "array":
      return Array.isArray(value) ? value.map((item) => fromProto(shape.item, item)) : []
    case "nullable":
      return value === null ? null : fromProto(shape.value, value)
    case "tagged": {
      if (!isRecord(value)) return value
      for (const member of shape.members) {
        const inner = value[tagField(member.tag)]
        if (inner !== undefined && inner !== null) return { _tag: member.tag, ...asRecord(fromProto(member.struct, inner)) }
      }
      return {}
    }
    case "struct": {
      if (!isRecord(value)) return value
      const out: Record<string, unknown> = {}
      for (const field of shape.fields) {
        const given = value[field.name]
        if (field.shape.kind === "nullable") {
          const which = value[nullOneof(field.name)]
          if (which === nullField(field.name) || (which === undefined && value[nullField(field.name)] !== undefined)) out[field.name] = null
          else if (given !== undefined && given !== null) out[field.name] = fromProto(field.shape.value, given)
          continue
        }
        const scalar = field.shape.kind === "string" || field.shape.kind === "number" || field.shape.kind === "boolean"
        if (field.optional && scalar) {
          // A wrapper: present (even holding the default) means given.
          if (isRecord(given)) out[field.name] = given["value"] ?? scalarDefault(field.shape)
          continue
        }
        if (scalar || field.shape.kind === "array") {
          out[field.name] = fromProto(field.shape, given)
          continue
        }
        if (given !== undefined && given !== null) out[field.name] = fromProto(field.shape, given)
      }
      return out
    }
  }
}

const asRecord = (value: unknown): Record<string, unknown> => (isRecord(value) ? value : {})

/** A reply in JSON form (the success Schema's encoded side) as the reply message's object. */
export const toProto = (shape: Shape, value: unknown): unknown => {
  switch (shape.kind) {
    case "void":
      return {}
    case "string":
    case "number":
    case "boolean":
      return value
    case "json":
      return toProtoValue(value)
    case "array":
      return Array.isArray(value) ? value.map((item) => toProto(shape.item, item)) : []
    case "nullable":
      return value === null ? null : toProto(shape.value, value)
    case "tagged": {
      const tag = asRecord(value)["_tag"]
      const member = shape.members.find((candidate) => candidate.tag === tag)
      return member === undefined ? {} : { [tagField(member.tag)]: toProto(member.struct, value) }
    }
    case "struct": {
      const given = asRecord(value)
      const out: Record<string, unknown> = {}
      for (const field of shape.fields) {
        const item = given[field.name]
        if (item === undefined) continue
        if (field.shape.kind === "nullable") {
          if (item === null) out[nullField(field.name)] = "NULL_VALUE"
          else out[field.name] = toProto(field.shape.value, item)
          continue
        }
        const scalar = field.shape.kind === "string" || field.shape.kind === "number" || field.shape.kind === "boolean"
        out[field.name] = field.optional && scalar ? { value: item } : toProto(field.shape, item)
      }
      return out
    }
  }
}

/** A reply as its message: an array reply is `{ items }`. */
export const replyToProto = (shape: Shape, value: unknown): unknown =>
  shape.kind === "array" ? { items: toProto(shape, value) } : toProto(shape, value)

/** A reply message (as proto-loader decodes it) as the reply's JSON form: the inverse of `replyToProto`, for gRPC clients written in TypeScript. */
export const replyFromProto = (shape: Shape, message: unknown): unknown =>
  shape.kind === "array" ? fromProto(shape, asRecord(message)["items"]) : fromProto(shape, message)
