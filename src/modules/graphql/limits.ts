// Depth and complexity limits, checked as validation rules before anything executes.
// Cost: every field 1; a list field with `perPage` costs 1 + perPage × (its selection's cost).
// Introspection (`__schema`, `__type`, `__typename`) is free and not depth-limited.
import {
  GraphQLError,
  Kind,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from "graphql";

export const MAX_DEPTH = 8;
export const MAX_COMPLEXITY = 1000;
export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;

interface Measure {
  depth: number;
  cost: number;
}

/** The rules for one request (variables are known: `perPage: $n` counts as the value sent). */
export function limitRules(variables: Record<string, unknown> | undefined, maxDepth = MAX_DEPTH, maxComplexity = MAX_COMPLEXITY) {
  return [
    (context: ValidationContext): ASTVisitor => ({
      OperationDefinition(node) {
        const schema = context.getSchema();
        const root = node.operation === "query" ? schema.getQueryType() : node.operation === "mutation" ? schema.getMutationType() : schema.getSubscriptionType();
        if (!root) return;
        const fragments = new Map<string, FragmentDefinitionNode>();
        for (const d of context.getDocument().definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
        const m = measure(schema, root, node.selectionSet, fragments, variables, new Set());
        if (m.depth > maxDepth) {
          context.reportError(new GraphQLError(`query depth ${m.depth} exceeds the maximum depth of ${maxDepth}`, { nodes: [node], extensions: { code: "max_depth_exceeded", limit: maxDepth, depth: m.depth } }));
        }
        if (m.cost > maxComplexity) {
          context.reportError(
            new GraphQLError(`query complexity ${m.cost} exceeds the maximum complexity of ${maxComplexity}`, {
              nodes: [node],
              extensions: { code: "max_complexity_exceeded", limit: maxComplexity, complexity: m.cost },
            }),
          );
        }
      },
    }),
  ];
}

function intArg(field: FieldNode, name: string, variables: Record<string, unknown> | undefined): number | undefined {
  const arg = field.arguments?.find((a) => a.name.value === name);
  if (!arg) return undefined;
  const v: ValueNode = arg.value;
  if (v.kind === Kind.INT) return Number(v.value);
  if (v.kind === Kind.VARIABLE) {
    const given = variables?.[v.name.value];
    return typeof given === "number" && Number.isFinite(given) ? given : undefined;
  }
  return undefined;
}

function measure(
  schema: GraphQLSchema,
  type: GraphQLNamedType,
  set: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  variables: Record<string, unknown> | undefined,
  visiting: Set<string>,
): Measure {
  let depth = 0;
  let cost = 0;
  const add = (m: Measure) => {
    depth = Math.max(depth, m.depth);
    cost += m.cost;
  };
  for (const sel of set.selections) {
    if (sel.kind === Kind.FRAGMENT_SPREAD) {
      const frag = fragments.get(sel.name.value);
      // Cycles are reported by the standard NoFragmentCycles rule.
      if (!frag || visiting.has(frag.name.value)) continue;
      const onType = schema.getType(frag.typeCondition.name.value) ?? type;
      add(measure(schema, onType, frag.selectionSet, fragments, variables, new Set([...visiting, frag.name.value])));
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      const onType = sel.typeCondition ? (schema.getType(sel.typeCondition.name.value) ?? type) : type;
      add(measure(schema, onType, sel.selectionSet, fragments, variables, visiting));
    } else {
      const name = sel.name.value;
      if (name.startsWith("__")) continue;
      const def = isObjectType(type) ? type.getFields()[name] : undefined;
      if (!def) continue; // unknown fields: reported by FieldsOnCorrectType
      let inner: Measure = { depth: 0, cost: 0 };
      if (sel.selectionSet) inner = measure(schema, getNamedType(def.type), sel.selectionSet, fragments, variables, visiting);
      const list = isListType(getNullableType(def.type));
      const perPage = Math.max(1, intArg(sel, "perPage", variables) ?? DEFAULT_PER_PAGE);
      add({ depth: 1 + inner.depth, cost: 1 + (list ? perPage : 1) * inner.cost });
    }
  }
  return { depth, cost };
}
