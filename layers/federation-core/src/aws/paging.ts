/** Following `position` through API Gateway's paged list operations. */
import { ErrorCode, FederationError } from '../errors.js';

/**
 * The `position` of the next page, or undefined after the last. A `position` answered twice would page
 * forever (holding the run's lease until the Lambda times out): it fails the listing with AWS_ERROR, so
 * the account-region ends FAILED (the run partial, nothing removed) instead.
 */
export function nextPosition(seen: Set<string>, position: string | undefined, operation: string) {
  if (!position) return undefined;
  if (seen.has(position)) {
    throw new FederationError(
      ErrorCode.AWS_ERROR,
      `${operation}: API Gateway answered the same page position twice (after ${seen.size + 1} pages); the listing cannot be completed`,
    );
  }
  seen.add(position);
  return position;
}
