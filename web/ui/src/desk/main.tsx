import { render } from "preact";
render(<p>AgentDesk</p>, document.getElementById("app")!);
