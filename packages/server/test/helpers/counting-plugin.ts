// A Kysely plugin that counts the queries it sees (tests of when queries are compiled and run).
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from "kysely";

export class CountingPlugin implements KyselyPlugin {
  seen = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.seen++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
